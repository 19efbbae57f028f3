// Error classes of spec 8.4. Every problem in a stream raises a subclass of ProgsError;
// `errorClass` is the class name the conformance runner expects (spec 10.4).

export class ProgsError extends Error {
  /**
   * @param {string} message what is wrong
   * @param {{chunk?: string, field?: string, offset?: number}} [where]
   */
  constructor(message, where = {}) {
    const parts = [];
    if (where.chunk) parts.push(`chunk ${where.chunk}`);
    if (where.field) parts.push(`field ${where.field}`);
    if (where.offset !== undefined && where.offset !== null) parts.push(`offset ${where.offset}`);
    super(parts.length ? `${message} (${parts.join(', ')})` : message);
    this.name = new.target.name;
    this.chunk = where.chunk ?? null;
    this.field = where.field ?? null;
    this.offset = where.offset ?? null;
  }
  /** @returns {string} */
  get errorClass() { return 'format'; }
}

/** The stream breaks a rule of the format. */
export class FormatError extends ProgsError {}

/** A chunk's CRC-32 does not match (spec 2.2). */
export class ChecksumError extends FormatError {
  get errorClass() { return 'checksum'; }
}

/** The stream ends inside the header, or (strict) before what was asked for. */
export class TruncatedError extends FormatError {
  get errorClass() { return 'truncated'; }
}

/** Unknown major version, unknown critical chunk, unknown structure mode. */
export class UnsupportedError extends FormatError {
  get errorClass() { return 'unsupported'; }
}

/** A declared count or length exceeds what the payload or the format allows. */
export class LimitError extends FormatError {
  get errorClass() { return 'limit'; }
}

export const ERROR_CLASSES = ['format', 'checksum', 'truncated', 'unsupported', 'limit'];
