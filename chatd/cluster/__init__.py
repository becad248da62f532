"""Several chatd nodes sharing one chat through Redis (docs/cluster.md).

- chatd.cluster.replica: ClusterChat, the Chat every node keeps of the whole
  cluster, and the ops that change it;
- chatd.cluster.node: Node, which applies the shared log in order (turns,
  stalls, nodes coming and going);
- chatd.cluster.doors: what a door's connection does differently in a
  cluster (lines that change shared state wait for their turn);
- chatd.cluster.ops: the one table of the model's state-changing operations
  a cluster replicates;
- chatd.cluster.entries: the log's entries, typed, with to_json/from_json;
- chatd.cluster.snapshot: a replica as JSON, for a node that joins;
- chatd.cluster.redis: the log over a Redis stream, heartbeats, reconnection;
- chatd.cluster.service: the twistd service.

Without --redis none of these modules is imported.
"""
