import { pino } from 'pino';

// Logs go to stderr as JSON lines: stdout belongs to command output (predictions, reports).
// Writes are synchronous: the scan computes synchronously for minutes at a time, and pino's default
// asynchronous destination holds every line after the first until the event loop turns, so stage
// and iteration lines would reach `kubectl logs` only when the scan ends.
export const log = pino(
  {
    name: 'elibadcode',
    level: process.env.ELIBADCODE_LOG_LEVEL ?? 'info',
    redact: { paths: ['*.secret', '*.token', '*.password', '*.accessKey', '*.secretKey', 'credentials'], censor: '[redacted]' },
  },
  pino.destination({ dest: 2, sync: true }),
);
