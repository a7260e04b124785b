// Jest runs each test file in its own V8 context, but onnxruntime-node's native binding creates output tensors'
// typed arrays in the main context, and onnxruntime-common checks them with `instanceof`. Giving the test context
// the main context's typed-array constructors makes both sides agree. (Only tests need this; a real process has
// one context.)
const { TestEnvironment } = require('jest-environment-node');

const TYPED = [
  'ArrayBuffer',
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
