// The machine a figure was measured on, for the JSON files under docs/figures/: the bench, the
// eval, bundle-size and chaos each record it, the load average included (the machine may be
// shared, and a figure measured under load says so).
import os from 'node:os';

export interface MachineInfo {
  cores: number;
  cpu: string;
  memory_gb: number;
  platform: string;
  node: string;
  /** 1, 5 and 15 minutes, when the figure was taken. */
  load_average: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cores: cpus.length, cpu: cpus[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version,
    load_average: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}
