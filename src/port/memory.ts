// Ports: an in-memory pair of connected ports, for tests and for wiring two parts of one process together.

import { Inlet, type FramePort, type PortCloseReason } from './port.js';

class MemoryPort implements FramePort {
  readonly name: string;
  peer: MemoryPort | undefined;
  readonly #inlet = new Inlet();
  #closeListener: ((reason: PortCloseReason) => void) | undefined;
  #closed = false;

  constructor(name: string) {
    this.name = name;
  }

  send(frame: Uint8Array): boolean {
    const peer = this.peer;
    if (this.#closed || peer === undefined || peer.#closed) return false;
    // A copy, so the receiver never sees the sender reuse its buffer, just as across a socket.
    peer.#deliver(frame.slice());
    return true;
  }

  #deliver(frame: Uint8Array): void {
    this.#inlet.push(frame);
  }

  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.#inlet.set(receiver);
  }

  onClose(listener: (reason: PortCloseReason) => void): void {
    this.#closeListener = listener;
  }

  close(): void {
    this.shut({ kind: 'local' });
    this.peer?.shut({ kind: 'peer' });
  }

  shut(reason: PortCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inlet.clear();
    const l = this.#closeListener;
    this.#closeListener = undefined;
    l?.(reason);
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
