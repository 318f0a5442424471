DROP TABLE upstream_keys;
