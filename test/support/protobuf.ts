/**
 * A minimal protobuf wire-format writer for tests that need bytes no encoder writes: malformed ONNX models
 * (test/onnx/model-info.test.ts) and streamed ones (test/package/onnx-fixture.ts). Valid models are built with
 * onnx-proto instead. Negative values are encoded as 64-bit two's complement, as protobuf does for int64.
 */
export function varint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/** Field `field` as a varint (wire type 0). */
export const int = (field: number, value: number | bigint): Buffer => Buffer.concat([varint(field * 8), varint(value)]);

/** Field `field` as length-delimited bytes (wire type 2): a string, raw bytes or an embedded message. */
export const len = (field: number, value: Buffer | string): Buffer => {
  const b = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint(field * 8 + 2), varint(b.length), b]);
};

/** Fields one after another: a message body. */
export const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
