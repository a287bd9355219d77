/**
 * What a process really listens on, read from /proc (Linux): its listening TCP sockets and Unix
 * socket paths, matched to the process through the socket inodes of its open file descriptors.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface ListeningSockets {
  /** `address:port` of each listening TCP socket (IPv4 dotted, IPv6 as hex words), deduplicated and sorted. */
  readonly tcp: readonly string[];
  /** Paths of listening Unix sockets, sorted. */
  readonly unix: readonly string[];
}

const TCP_LISTEN = '0A';
/** __SO_ACCEPTCON: the socket accepts connections. */
const UNIX_ACCEPTING = '00010000';

function tcpAddress(hex: string): string {
  const [ip = '', port = ''] = hex.split(':');
  const p = Number.parseInt(port, 16);
  if (ip.length === 8) {
    // /proc prints IPv4 addresses as a little-endian 32-bit word.
    const bytes = [6, 4, 2, 0].map((i) => Number.parseInt(ip.slice(i, i + 2), 16));
    return `${bytes.join('.')}:${p}`;
  }
  return `[${ip}]:${p}`;
}

/** Listening sockets of process `pid`. */
export async function listeningSockets(pid: number): Promise<ListeningSockets> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1]) inodes.add(m[1]);
  }
  const rows = async (file: string): Promise<string[][]> =>
    (await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => ''))
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length > 1);
  const tcp = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    for (const f of await rows(file)) if (f[3] === TCP_LISTEN && inodes.has(f[9] ?? '')) tcp.add(tcpAddress(f[1] ?? ''));
  }
  const unix = new Set<string>();
  for (const f of await rows('unix')) if (f[3] === UNIX_ACCEPTING && inodes.has(f[6] ?? '') && f[7]) unix.add(f[7]);
  return { tcp: [...tcp].sort(), unix: [...unix].sort() };
}
