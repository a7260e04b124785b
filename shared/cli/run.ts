/** The compiled CLI's entry (lib/mlship.js): runs `mlship` with the process's arguments. */
import { main } from './main';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
