"""Task matching on one node: ready tasks of the shards it leads meet the polls waiting here."""
