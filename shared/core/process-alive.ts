/**
 * Whether process `pid` on this machine still runs. Signal 0 checks without signalling; EPERM means it
 * exists but belongs to someone else, which is still alive.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
