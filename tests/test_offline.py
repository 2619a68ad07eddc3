"""Nothing downloads at run time: the suite runs with the network off.

`./course.sh test` runs pytest in a network namespace with only loopback (Linux, root,
as in CI) and sets COURSE_EXPECT_OFFLINE=1; this test proves that the isolation holds,
so the notebooks and tests that passed cannot have downloaded anything.
"""

from __future__ import annotations

import os
import socket

import pytest


@pytest.mark.skipif(os.environ.get("COURSE_EXPECT_OFFLINE") != "1",
                    reason="suite not started offline by ./course.sh test (needs Linux as root)")
def test_outside_network_is_unreachable():
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 443), timeout=3)
    with pytest.raises(OSError):
        socket.getaddrinfo("pypi.org", 443)


def test_loopback_still_works_for_jupyter_and_browser_tests():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=3)
    client.close()
    server.close()
