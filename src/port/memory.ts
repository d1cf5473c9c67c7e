// Ports: an in-memory pair of connected ports, for tests and for wiring two parts of one process together.

import { PortBase, type FramePort } from './port.js';

class MemoryPort extends PortBase {
  peer: MemoryPort | undefined;

  send(frame: Uint8Array): boolean {
    const peer = this.peer;
    if (this.closed || peer === undefined || peer.closed) return false;
    // A copy, so the receiver never sees the sender reuse its buffer, just as across a socket.
    peer.inlet.push(frame.slice());
    return true;
  }

  override close(): void {
    super.close();
    this.peer?.shut({ kind: 'peer' });
  }

  protected dispose(): void {
    // Nothing to release: the pair lives in memory.
  }
}

/** Returns two connected ports: a frame sent on one arrives, copied, at the other's receiver. Closing either closes both. */
export function memoryPortPair(nameA = 'memory:a', nameB = 'memory:b'): [FramePort, FramePort] {
  const a = new MemoryPort(nameA);
  const b = new MemoryPort(nameB);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
