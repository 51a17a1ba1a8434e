// Preloaded (node --expose-gc --require) into the ers-bridge process of the memory measurement only: SIGUSR2 runs a
// full garbage collection, so the bench can read the memory that live sessions really hold. ers-bridge is unchanged.
'use strict';
process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') {
    global.gc();
    global.gc();
  }
});
