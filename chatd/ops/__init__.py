"""Operations: assembling the daemon and watching it run.

service.py       listeners that log their port, the shutdown BYE, the open-file
                 limit, the hashing threads, the history's start and final write
metrics.py       --metrics: the counts and the live state as Prometheus metrics
metrics_http.py  the --metrics listener (twisted.web)
health.py        /healthz
logs.py          JSON log lines for twistd --logger (docs/running.md)
reload.py        SIGHUP, REHASH and /rehash: the config file read again and applied
tls.py           TLS listeners whose key and certificate a reload replaces
"""
