"""Independent .progs decoder, written from spec/ alone (numpy only, nothing from progs_codec).

    python conformance/independent_decoder INPUT MAX_LOD OUTPUT

Follows the conformance convention of spec 10.4: writes the canonical dump of the decoded
LoD to OUTPUT and exits 0, or prints ``error-class: NAME`` on stderr and exits 2. Its purpose
is to show that the spec is enough to decode every conformance vector bit for bit.
"""

import sys

from pgs_dump import write_dump
from pgs_errors import StreamError
from pgs_stream import decode_file


def main(argv):
    if len(argv) != 3 or not argv[1].isdigit() or int(argv[1]) < 1:
        print("usage: independent_decoder INPUT MAX_LOD OUTPUT", file=sys.stderr)
        return 64
    with open(argv[0], "rb") as f:
        data = f.read()
    try:
        decoded = decode_file(data, int(argv[1]))
    except StreamError as error:
        print(f"error-class: {error.error_class}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(argv[2], "wb") as f:
        f.write(write_dump(decoded))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
