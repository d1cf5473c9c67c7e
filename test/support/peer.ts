// Test helper: a QEMU-stream peer on a real socket, as QEMU would be, with every frame it receives.
import { connect, type Socket } from 'node:net';
import { FrameDecoder, QEMU_FRAMING, encodeFrame, type Switch } from 'macslot';
import { tagOf, tagged, until } from './frames.js';

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

/** Connects a stream peer to the switch listening at `where` and returns it with the MAC the switch gave it. */
export async function joinStreamPeer(sw: Switch, where: string): Promise<{ peer: StreamPeer; mac: string }> {
  const before = new Set(sw.ports().map((p) => p.id));
  const peer = await streamPeer(where);
  await until(() => sw.ports().some((p) => !before.has(p.id) && p.mac !== undefined), 10_000, 'the switch to attach a stream peer');
  return {
    peer,
    mac: sw
      .ports()
      .find((p) => !before.has(p.id))!
      .mac!.toString(),
  };
}

/** Two fresh stream peers exchange a unicast each way: the switch at `where` still serves. */
export async function streamPairWorks(sw: Switch, where: string): Promise<void> {
  const a = await joinStreamPeer(sw, where);
  const b = await joinStreamPeer(sw, where);
  try {
    a.peer.send(tagged(b.mac, a.mac, 1));
    b.peer.send(tagged(a.mac, b.mac, 2));
    await until(() => a.peer.got.some((f) => tagOf(f) === 2) && b.peer.got.some((f) => tagOf(f) === 1), 10_000, 'a unicast each way');
  } finally {
    a.peer.socket.destroy();
    b.peer.socket.destroy();
  }
}
