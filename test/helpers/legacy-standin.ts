/**
 * The legacy HSCN stand-in for tests: the product's own (src/legacy-standin, what `ers-bridge emulate-legacy` and
 * `ers-bridge demo --mode …` run), re-exported so tests keep importing it from here.
 */
export * from '../../src/legacy-standin/index.js';
