from __future__ import annotations

from app.lessons.markdown import parser
from app.preview.ports import OpenPort, parse_listing

# What the sandbox answered on the development VM: a published busybox, a python3 server,
# the outer engine's DNS on 127.0.0.11, and an IPv6 loopback listener.
LISTING = """web\tbusybox\t0.0.0.0:8080->80/tcp, :::8080->80/tcp
--sockets--
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B00007F:8D49 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534  0 1
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  0 1
   2: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 1
   3: 0216D60A:EA36 0116D60A:EC3D 06 00000000:00000000 03:00001626 00000000     0  0 0
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A
   1: 0000000000000000FFFF00000100007F:0BB9 00000000000000000000000000000000:0000 0A
   2: 00000000000000000000000000000000:1389 00000000000000000000000000000000:0000 0A
"""


def test_published_and_listening_ports_are_listed_once_loopback_left_out() -> None:
    assert parse_listing(LISTING) == [
        OpenPort(5001, "a server in the sandbox"),
        OpenPort(8000, "a server in the sandbox"),
        OpenPort(8080, "web (busybox), its port 80"),
    ]


def test_a_preview_link_in_a_lesson_opens_the_port_in_a_new_tab() -> None:
    html = parser().render("[the site](preview:8080) and [admin](preview:8080/admin?x=1)")
    assert '<a href="/preview/8080/" target="_blank" rel="noopener">the site</a>' in html
    assert 'href="/preview/8080/admin?x=1"' in html
