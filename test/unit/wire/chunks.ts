/** Cuts `data` at the given ascending offsets: the chunks a socket might deliver. */
export function cut(data: Buffer, offsets: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) {
    chunks.push(data.subarray(prev, o));
    prev = o;
  }
  chunks.push(data.subarray(prev));
  return chunks;
}
