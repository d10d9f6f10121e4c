/** The agent's version, reported in every report; kept equal to package.json's by a unit test. */
export const AGENT_VERSION = "0.1.0";
