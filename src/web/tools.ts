// Live page: explain one frame (hex or a sample row), and split a dropped capture into one capture per client.

import { CaptureReader, CaptureWriter, LINKTYPE_ETHERNET, MacslotError, type Rule } from '../index.js';
import { byId, clearError, count, el, fillTable, row, showError } from './dom.js';
import { fromHex, toHex } from './frames.js';
import { clientName, frameVid, type Session } from './session.js';

const WHY: Readonly<Record<Rule, string>> = {
  broadcast: 'broadcast: every client that receives broadcast, and the promiscuous ones',
  'multicast-exact': 'a joined group held by an exact multicast entry',
  'multicast-hash': 'a group the multicast hash let in; software checked who joined it',
  'multicast-all': 'a joined group let in by all-multicast or promiscuous mode; software checked who joined it',
  'unicast-exact': "a client's MAC held by an exact unicast entry",
  software: "a client's MAC held in software: the NIC accepted the frame because it is promiscuous",
  promiscuous: 'nobody holds this destination; only the promiscuous clients get it',
  'drop-unknown': 'unicast nobody holds: dropped',
  'drop-multicast': 'a group nobody joined: dropped',
  'drop-runt': 'shorter than an Ethernet header (14 bytes): dropped',
  'drop-oversize': "longer than the NIC's largest frame: dropped",
  'drop-bad-descriptor': 'a burst descriptor outside the pool: dropped',
  'drop-vlan': 'a VLAN the NIC does not carry, or a cut tag: dropped',
};

/** Explains `frame` with the NIC as it is now: destination, rule and why, path, receivers. */
export function explainFrame(s: Session, frame: Uint8Array): void {
  const v = s.dp.classify(frame);
  const dst = frame.length >= 6 ? toHex(frame.subarray(0, 6)).replaceAll(' ', ':') : `(${frame.length} bytes: no destination)`;
  const items: [string, string][] = [
    ['destination', dst],
    ['length', `${frame.length} bytes`],
    ...(s.vlans === undefined ? [] : [['vlan', String(frameVid(s, frame) ?? 'none')] as [string, string]]),
    ['rule', v.rule],
    ['why', WHY[v.rule]],
    ['path', v.path === 'software' ? 'software (the host pays for this frame)' : 'hardware'],
    ['delivered to', v.deliver.map((id) => clientName(s, id)).join(', ') || 'nobody'],
  ];
  const dl = byId('explain-result');
  dl.dataset.rule = v.rule;
  dl.replaceChildren(...items.flatMap(([k, val]) => [el('dt', { text: k }), el('dd', { text: val, attrs: { 'data-field': k } })]));
}

/** Wires the explain form; `current` gives the session. */
export function wireExplain(current: () => Session | undefined): void {
  byId<HTMLFormElement>('explain-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const s = current();
    const error = byId('explain-error');
    const text = byId<HTMLTextAreaElement>('explain-hex').value;
    const frame = fromHex(text);
    if (s === undefined) return;
    if (frame === undefined) {
      showError(error, new MacslotError('INVALID_ARGUMENT', `${JSON.stringify(text.slice(0, 60))} is not hex bytes`));
      return;
    }
    clearError(error);
    explainFrame(s, frame);
  });
}

/** Shows a sample frame in the explain form, explains it and moves the focus to the result. */
export function explainSample(s: Session, frame: Uint8Array): void {
  byId<HTMLTextAreaElement>('explain-hex').value = toHex(frame);
  clearError(byId('explain-error'));
  explainFrame(s, frame);
  byId('explain-result').focus();
}

let urls: string[] = [];

/** Splits the capture `bytes` per client with the NIC as it is now, and shows counts and downloads. Throws CAPTURE_INVALID. */
export function splitCapture(s: Session, name: string, bytes: Uint8Array): void {
  const reader = new CaptureReader(name);
  const parts = new Map<number, { chunks: Uint8Array[]; writer: CaptureWriter | undefined }>();
  let frames = 0;
  let dropped = 0;
  let other = 0;
  reader.push(bytes);
  while (reader.next()) {
    frames++;
    if (reader.linkType !== LINKTYPE_ETHERNET) {
      other++;
      continue;
    }
    const v = s.dp.classify(reader.data);
    if (v.deliver.length === 0) dropped++;
    for (const id of v.deliver) {
      let p = parts.get(id);
      if (p === undefined) parts.set(id, (p = { chunks: [], writer: undefined }));
      const chunks = p.chunks;
      p.writer ??= new CaptureWriter((b) => chunks.push(b.slice()), { format: reader.format ?? 'pcap' });
      p.writer.write(reader.buffer, reader.dataOffset, reader.capturedLength, reader.seconds, reader.nanoseconds, reader.originalLength);
    }
  }
  reader.end();
  for (const u of urls) URL.revokeObjectURL(u);
  urls = [];
  const ext = reader.format === 'pcapng' ? 'pcapng' : 'pcap';
  const rows = s.nic.clients().map((c) => {
    const p = parts.get(c.id);
    const n = p?.writer?.frames ?? 0;
    p?.writer?.close();
    const size = p?.chunks.reduce((a, b) => a + b.length, 0) ?? 0;
    const tr = row([c.name, [count(n), 'num'], [count(size), 'num']]);
    if (p === undefined) tr.append(el('td', { text: 'no frames' }));
    else {
      const url = URL.createObjectURL(new Blob(p.chunks as BlobPart[], { type: 'application/vnd.tcpdump.pcap' }));
      urls.push(url);
      tr.append(el('td', {}, el('a', { text: `${c.name}.${ext}`, attrs: { href: url, download: `${c.name}.${ext}` } })));
    }
    return tr;
  });
  fillTable(byId<HTMLTableElement>('split'), rows);
  byId('capture-summary').textContent =
    `${name}: ${count(frames)} frames (${reader.format ?? 'empty'}); ` +
    `${count(frames - dropped - other)} delivered to at least one client, ` +
    `${count(dropped)} dropped by the filter, ${count(other)} not Ethernet (not classified).`;
}

/** Wires the capture file input and the drop zone around it. */
export function wireCaptures(current: () => Session | undefined): void {
  const input = byId<HTMLInputElement>('capture-file');
  const zone = byId('drop');
  const error = byId('capture-error');
  const take = (file: File | undefined): void => {
    const s = current();
    if (file === undefined || s === undefined) return;
    file.arrayBuffer().then(
      (buffer) => {
        try {
          splitCapture(s, file.name, new Uint8Array(buffer));
          clearError(error);
        } catch (err) {
          showError(error, err);
        }
      },
      (err: unknown) => showError(error, err),
    );
  };
  input.addEventListener('change', () => take(input.files?.[0]));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    take(e.dataTransfer?.files[0]);
  });
}
