import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeNpy, parseNpy, readNpy, writeNpy } from '../../shared/onnx/npy';
import { compareTensors, summarizeParity, unravel } from '../../shared/onnx/parity';
import { fromFloat16Bits, randomTensor, toFloat16Bits } from '../../shared/onnx/tensors';

describe('float16', () => {
  it('rounds to nearest even like numpy, with overflow to infinity and subnormals', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(0.1)).toBe(0x2e66);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65519)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00);
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(toFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to the even mantissa
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toFloat16Bits(NaN) & 0x7e00).toBe(0x7e00);
    expect(fromFloat16Bits(0x2e66)).toBeCloseTo(0.0999755859375, 12);
    expect(fromFloat16Bits(0x0001)).toBe(2 ** -24);
    expect(fromFloat16Bits(0xfc00)).toBe(-Infinity);
  });
});

describe('.npy files', () => {
  it('round-trips every supported type with a 64-byte aligned header', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-npy-'));
    for (const type of ['float32', 'float16', 'float64', 'uint8', 'int8', 'int16', 'uint16', 'int32', 'int64', 'bool'] as const) {
      const t = randomTensor(type, [2, 3, 4], 5);
      const file = path.join(dir, `${type}.npy`);
      writeNpy(file, t);
      const buf = fs.readFileSync(file);
      expect((10 + buf.readUInt16LE(8)) % 64).toBe(0);
      const back = readNpy(file);
      expect(back.type).toBe(type);
      expect(back.dims).toEqual([2, 3, 4]);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('reads what numpy writes (format 1.0 header, scalar and 1-D shapes, version 2 headers)', () => {
    // np.save(f, np.array([1.5, -2], dtype='<f4')): header text as numpy 1.24 writes it.
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    const padded = header + ' '.repeat(128 - 10 - header.length - 1) + '\n';
    const v1 = Buffer.concat([
      Buffer.from('\x93NUMPY\x01\x00', 'latin1'),
      Buffer.from([padded.length, 0]),
      Buffer.from(padded, 'latin1'),
      Buffer.from(new Float32Array([1.5, -2]).buffer),
    ]);
    expect(parseNpy(v1)).toEqual({ type: 'float32', dims: [2], data: new Float32Array([1.5, -2]) });
    const v2 = Buffer.concat([
      Buffer.from('\x93NUMPY\x02\x00', 'latin1'),
      Buffer.from([padded.length, 0, 0, 0]),
      Buffer.from(padded, 'latin1'),
      Buffer.from(new Float32Array([3, 4]).buffer),
    ]);
    expect(Array.from(parseNpy(v2).data as Float32Array)).toEqual([3, 4]);
    const scalar = encodeNpy({ type: 'int64', dims: [], data: new BigInt64Array([7n]) });
    expect(parseNpy(scalar)).toEqual({ type: 'int64', dims: [], data: new BigInt64Array([7n]) });
  });

  it('rejects big-endian, Fortran order and truncated data with the file name', () => {
    const good = encodeNpy({ type: 'float32', dims: [4], data: new Float32Array(4) });
    expect(() => parseNpy(Buffer.from(good.toString('latin1').replace("'<f4'", "'>f4'"), 'latin1'), 'a.npy')).toThrow(
      'a.npy: .npy dtype >f4 is not supported.',
    );
    expect(() => parseNpy(Buffer.from(good.toString('latin1').replace('False', 'True '), 'latin1'), 'b.npy')).toThrow(
      'b.npy: Fortran-ordered arrays are not supported.',
    );
    expect(() => parseNpy(good.subarray(0, good.length - 1), 'c.npy')).toThrow('c.npy: holds 15 data bytes, shape [4] <f4 needs 16.');
    expect(() => parseNpy(Buffer.from('PK\x03\x04 not npy'), 'd.npy')).toThrow('d.npy is not a .npy file (bad magic bytes).');
  });
});

describe('parity', () => {
  const t = (data: number[], dims = [data.length]) => ({ type: 'float32' as const, dims, data: new Float32Array(data) });

  it('applies numpy.allclose: |a - e| <= atol + rtol * |e|, and reports the worst element', () => {
    const expected = t([1, 100, 0.00001, -3, 0, 0], [2, 3]);
    const actual = t([1.0009, 100.15, 0.0001, -3, 0.00005, 0], [2, 3]);
    const r = compareTensors('y', expected, actual, { atol: 1e-4, rtol: 1e-3 });
    // 100.15 is outside 1e-4 + 0.1; 0.0001 vs 0.00001 is inside atol; 1.0009 inside 1e-4 + 1e-3.
    expect(r.ok).toBe(false);
    expect(r.mismatches).toBe(1);
    expect(r.elements).toBe(6);
    expect(r.maxAbs).toBeCloseTo(0.15, 4);
    expect(r.maxRel).toBeCloseTo(0.0015, 6);
    expect(r.worst).toEqual({ index: [0, 1], expected: 100, actual: expect.closeTo(100.15, 4) });
  });

  it('treats NaN like numpy (equal to NaN), infinities by sign, and different shapes as a failure without comparing', () => {
    expect(compareTensors('y', t([NaN, Infinity]), t([NaN, Infinity]), { atol: 0, rtol: 0 }).ok).toBe(true);
    const nan = compareTensors('y', t([1, -Infinity]), t([NaN, Infinity]), { atol: 1, rtol: 1 });
    expect(nan).toMatchObject({ ok: false, mismatches: 2, maxAbs: Infinity });
    expect(compareTensors('boxes', t([1, 2, 3, 4], [1, 4]), t([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]), { atol: 1, rtol: 1 })).toMatchObject({
      ok: false,
      shape: { expected: [1, 4], actual: [2, 4] },
    });
  });

  it('compares integer outputs exactly at zero tolerance and summarizes the worst per output over cases', () => {
    const labels = { type: 'int64' as const, dims: [3], data: new BigInt64Array([0n, 2n, 1n]) };
    const same = compareTensors('labels', labels, { ...labels, data: new BigInt64Array([0n, 2n, 1n]) }, { atol: 0, rtol: 0 });
    const other = compareTensors('labels', labels, { ...labels, data: new BigInt64Array([0n, 1n, 1n]) }, { atol: 0, rtol: 0 });
    expect(same.ok).toBe(true);
    expect(other).toMatchObject({ ok: false, mismatches: 1, maxAbs: 1, worst: { index: [1], expected: 2, actual: 1 } });
    expect(summarizeParity([{ outputs: [same] }, { outputs: [other] }])).toEqual({
      labels: { maxAbs: 1, maxRel: 0.5, mismatches: 1, ok: false },
    });
    expect(unravel(23, [2, 3, 4])).toEqual([1, 2, 3]);
  });
});
