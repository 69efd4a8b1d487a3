"""Copy what is sent to a syslog socket to stdout, one line per message.

The image has no syslog daemon; cron logs there: every tick's start, a failed tick, and what
goes wrong before a tick can run (PAM, a bad crontab). The entrypoint runs this on /dev/log
so that those lines reach the container's log too.
    python3 syslog.py /dev/log
"""

import contextlib
import os
import re
import signal
import socket
import sys

PREFIX = re.compile(r"^<\d+>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?")


def main(path: str) -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)  # cron logs from its children too, after they switch to the tester user
    while True:
        text = sock.recv(65536).decode(errors="replace").rstrip("\n\0")
        print(f"syslog: {PREFIX.sub('', text)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
