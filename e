Error: peer.json: no such config file; pass one with -f CONFIG
