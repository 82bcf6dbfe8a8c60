import { pino } from 'pino';

// Logs go to stderr as JSON lines: stdout belongs to command output (predictions, reports).
export const log = pino(
  {
    name: 'elibadcode',
    level: process.env.ELIBADCODE_LOG_LEVEL ?? 'info',
    redact: { paths: ['*.secret', '*.token', '*.password', '*.accessKey', '*.secretKey', 'credentials'], censor: '[redacted]' },
  },
  pino.destination(2),
);
