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
