# -*- coding: utf-8 -*-
"""Runs Autobahn's `wstest` (Python 2.7) from a pip --target folder, with
every listening socket bound to 127.0.0.1 instead of all interfaces.

    python2.7 conformance/autobahn/wstest.py SITE_DIR [wstest arguments...]

scripts/peers installs autobahntestsuite into $MPNET_PEERS/autobahn and
writes $MPNET_PEERS/bin/wstest, which calls this file with that folder;
scripts/autobahn runs `wstest -m fuzzingserver -s SPEC --webport 0`.
"""
import site
import sys

if len(sys.argv) < 2:
    sys.stderr.write("usage: wstest.py SITE_DIR [wstest arguments...]\n")
    sys.exit(2)

# A site dir (not just sys.path): its .pth files (zope's namespace) count.
site.addsitedir(sys.argv[1])

from twisted.internet import posixbase  # noqa: E402

LOOPBACK = "127.0.0.1"
_listen_tcp = posixbase.PosixReactorBase.listenTCP
_listen_ssl = posixbase.PosixReactorBase.listenSSL


def _listening(listener):
    # scripts/autobahn waits for this line: the port is bound by this process.
    addr = listener.getHost()
    sys.stdout.write("mpnet-wstest: listening on %s:%d\n" % (addr.host, addr.port))
    sys.stdout.flush()
    return listener


def _listen_tcp_loopback(self, port, factory, backlog=50, interface=""):
    return _listening(_listen_tcp(self, port, factory, backlog, interface or LOOPBACK))


def _listen_ssl_loopback(self, port, factory, contextFactory, backlog=50, interface=""):
    return _listening(_listen_ssl(self, port, factory, contextFactory, backlog, interface or LOOPBACK))


posixbase.PosixReactorBase.listenTCP = _listen_tcp_loopback
posixbase.PosixReactorBase.listenSSL = _listen_ssl_loopback

from autobahntestsuite.wstest import run  # noqa: E402

sys.argv = ["wstest"] + sys.argv[2:]
run()
