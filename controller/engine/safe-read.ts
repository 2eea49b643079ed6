// Reading a small file the agent did not write, in a folder others may write to: lstat first,
// opened with O_NOFOLLOW|O_NONBLOCK (a FIFO would block a read forever, a symlink could lead to
// /dev/zero or a host secret), checked on the opened handle to be a regular file, read with a cap.

import { constants as C } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';

export type SmallFile = { text: string } | { refused: 'not_regular_file' | 'too_large' };

/** The file's text, why it was refused, or undefined when it does not exist (or vanished meanwhile). */
export async function readSmallRegularFile(p: string, maxBytes: number): Promise<SmallFile | undefined> {
  const pre = await fs.lstat(p).catch(() => undefined);
  if (!pre) return undefined;
  if (!pre.isFile()) return { refused: 'not_regular_file' };
  let fh: FileHandle;
  try {
    fh = await fs.open(p, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return { refused: 'not_regular_file' };
    return undefined;
  }
  try {
    const st = await fh.stat(); // the file actually opened, whatever the name points to now
    if (!st.isFile()) return { refused: 'not_regular_file' };
    if (st.size > maxBytes) return { refused: 'too_large' };
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > maxBytes) return { refused: 'too_large' };
    return { text: buf.subarray(0, bytesRead).toString('utf8') };
  } finally {
    await fh.close();
  }
}
