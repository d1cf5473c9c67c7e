// Data plane (Wasm): the module's entry; everything it exports is in dataplane.ts.

export * from './dataplane';
