// Optional persistence: the whole state as one JSON file, written atomically.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { EmulatorState, Snapshot } from './state/index.js';

export function loadSnapshot(file: string, state: EmulatorState): boolean {
  if (!existsSync(file)) return false;
  let data: Snapshot;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`Snapshot ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (data?.version !== 1) throw new Error(`Snapshot ${file} has an unknown version (${data?.version}); delete it or pick another file.`);
  state.restore(data);
  return true;
}

export function saveSnapshot(file: string, state: EmulatorState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state.snapshot()));
  renameSync(tmp, file);
}
