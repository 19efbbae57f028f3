// Public API of the JavaScript .progs decoder. No runtime dependency, no Node-only API:
// runs in browsers, Web Workers and Node.
export { Decoder, decode, DEFAULT_MAX_ANCHORS } from './decoder.js';
export {
  ProgsError, FormatError, ChecksumError, TruncatedError, UnsupportedError, LimitError, ERROR_CLASSES,
} from './errors.js';
export { GROUPS } from './header.js';
export {
  canonicalDump, dumpRecords, headerRecords, levelRecords, recordPieces, recordBytes, DUMP_MAGIC,
} from './canonical.js';
