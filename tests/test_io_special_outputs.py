"""Outputs that are not regular files: written into, never replaced.

An atomic write renames a temporary file over its target; over /dev/null (as
root, the default in containers) that replaced the system's /dev/null with a
CSV file, and over a FIFO it left the reader waiting for ever.
"""

from __future__ import annotations

import os
import stat
import threading

import numpy as np
import pytest

from boda.io import write_image, write_output


def _read_fifo_in_background(path, into: list[bytes]) -> threading.Thread:
    def read():
        with open(path, "rb") as f:
            into.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


@pytest.mark.parametrize("through_link", [False, True])
def test_a_fifo_gets_the_data_and_stays_a_fifo(tmp_path, through_link):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if through_link:  # like /dev/stdout -> /proc/self/fd/1 -> pipe
        target = tmp_path / "stdout"
        target.symlink_to(fifo)
    received: list[bytes] = []
    reader = _read_fifo_in_background(fifo, received)
    write_output(target, "a,b\n1,2\n")
    reader.join(timeout=10)
    assert received == [b"a,b\n1,2\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_an_image_written_to_a_fifo_arrives_whole(tmp_path):
    fifo = tmp_path / "picture.png"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = _read_fifo_in_background(fifo, received)
    write_image(fifo, np.zeros((4, 5, 3), np.float32))
    reader.join(timeout=10)
    assert received and received[0].startswith(b"\x89PNG")


def test_a_character_device_is_written_into_not_replaced(tmp_path):
    device = tmp_path / "null"
    try:  # a private /dev/null (1, 3); needs CAP_MKNOD, as root in CI containers
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot create a device node here")
    write_output(device, b"discarded")
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert os.stat(device).st_rdev == os.makedev(1, 3)
