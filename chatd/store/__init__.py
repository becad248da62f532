"""History stores: what was said in rooms, kept behind an interface.

chatd.store.interface  IHistory, Entry, Kind, the errors and id stamps
chatd.store.sqlite     the SQLite database itself (synchronous; faults as sentences)
chatd.store.sqlite_search  its search index: FTS5 tables, their queue, searching
chatd.store.writer     SQLiteHistory: IHistory over it through one writer thread
chatd.store.memory     MemoryHistory: IHistory in lists, the tests' fake
chatd.store.accounts   accounts and registered rooms in the history's database
chatd.store.redis_history   history in Redis streams, the same for every node (--redis)
chatd.store.redis_accounts  accounts in Redis, one record per name (--redis)
chatd.store.resp       a Redis link that reads whole replies through hiredis
chatd.store.scan       search by reading the latest messages: memory and Redis
"""
