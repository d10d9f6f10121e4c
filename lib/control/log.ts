/** The little of a logger the control services need; Powertools' Logger fits it, tests pass silentLog. */
export interface ControlLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export const silentLog: ControlLog = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** The shape of Powertools' Logger that matters here (kept structural so this module imports nothing). */
interface StructuredLogger {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** Powertools' Logger as a ControlLog: extra fields become keys of the JSON log line. */
export function controlLog(logger: StructuredLogger): ControlLog {
  return {
    info: (m, x) => (x === undefined ? logger.info(m) : logger.info(m, x)),
    warn: (m, x) => (x === undefined ? logger.warn(m) : logger.warn(m, x)),
    error: (m, x) => (x === undefined ? logger.error(m) : logger.error(m, x)),
  };
}
