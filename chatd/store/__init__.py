"""History stores: what was said in rooms, kept behind an interface.

chatd.store.interface  IHistory, Entry, Kind, the errors and id stamps
chatd.store.sqlite     the SQLite database itself (synchronous; faults as sentences)
chatd.store.writer     SQLiteHistory: IHistory over it through one writer thread
chatd.store.memory     MemoryHistory: IHistory in lists, the tests' fake
"""
