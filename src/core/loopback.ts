/** Whether a URL hostname (`localhost`, `127.x.y.z`, `[::1]` or `::1`) names this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}
