import { CprError } from "../../protocol/errors.js";
import type { Command } from "../command.js";

/** `cpr registry` (placeholder while it is being written). */
export const command: Command = {
  name: "registry",
  usage: "cpr registry",
  summary: "not yet available",
  help: "",
  options: {},
  async run() {
    throw new CprError("not-implemented", "cpr registry is not available yet");
  },
};
