/**
 * The `require('nngeometry')` entry. The library is an ES module; Node ≥ 20.19 (and ≥ 22.12)
 * loads ES modules from `require` (`require(esm)`), so CommonJS programs get the same module
 * instance as `import` users (one tfjs, one kernel registry). Older Node versions cannot, and get
 * an error that says what to write instead.
 */
type NNGeometry = typeof import('./index.js', { with: { 'resolution-mode': 'import' } });

function loadEsm(): NNGeometry {
  try {
    return require('./index.js') as NNGeometry;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') {
      throw new Error(
        `nngeometry is an ES module and this Node (${process.version}) cannot require() it: ` +
          `write \`const nngeometry = await import('nngeometry')\` instead, or use Node ≥ 20.19`,
        { cause: e },
      );
    }
    throw e;
  }
}

export = loadEsm();
