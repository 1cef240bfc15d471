import { CprError } from "../../protocol/errors.js";
import type { Command } from "../command.js";

/** `cpr search` (placeholder while it is being written). */
export const command: Command = {
  name: "search",
  usage: "cpr search",
  summary: "not yet available",
  help: "",
  options: {},
  async run() {
    throw new CprError("not-implemented", "cpr search is not available yet");
  },
};
