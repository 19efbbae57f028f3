"""files: atomic writes name the user's path, leave nothing behind, and check outputs first."""

import signal
import subprocess
import sys

import pytest

from progs_codec.files import atomic_path, check_output_file, write_atomic


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


def test_errors_name_the_destination_not_the_temporary(tmp_path):
    target = tmp_path / "missing" / "x.ply"
    with pytest.raises(FileNotFoundError) as error:
        write_atomic(target, b"abc")
    assert error.value.filename == str(target) and ".tmp" not in str(error.value)


def test_check_output_file(tmp_path):
    assert check_output_file(tmp_path / "a.ply") == tmp_path / "a.ply"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output_file(tmp_path / "no" / "a.ply")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        check_output_file(tmp_path / "file" / "a.ply")


def test_killed_writer_never_leaves_a_partial_file(tmp_path):
    """SIGKILL in the middle of a write: the destination keeps its old content (only a hidden
    temporary file can remain: no cleanup runs after SIGKILL)."""
    target = tmp_path / "scene.bin"
    target.write_bytes(b"old")
    script = ("import sys, time\n"
              "from progs_codec.files import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n"
              "    with open(tmp, 'wb') as f:\n"
              "        f.write(b'new, half')\n"
              "        f.flush()\n"
              "        print('writing', flush=True)\n"
              "        time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert target.read_bytes() == b"old"
    assert all(p.name.startswith(".scene.") for p in tmp_path.iterdir() if p != target)
