// Test helper: a QEMU-stream peer on a real socket, as QEMU would be, with every frame it receives.
import { connect, type Socket } from 'node:net';
import { FrameDecoder, QEMU_FRAMING, encodeFrame } from 'macslot';

/** A connected stream peer. */
export interface StreamPeer {
  readonly socket: Socket;
  readonly got: Uint8Array[];
  send(frame: Uint8Array): void;
  readonly closed: Promise<void>;
}

/** Resolves with a peer connected to the UNIX socket at `path`. */
export async function streamPeer(path: string): Promise<StreamPeer> {
  const socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const got: Uint8Array[] = [];
  const dec = new FrameDecoder(QEMU_FRAMING, (f) => got.push(f.slice()));
  socket.on('data', (c) => dec.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, got, send: (f) => void socket.write(encodeFrame(QEMU_FRAMING, f)), closed };
}
