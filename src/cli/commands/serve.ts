import { CprError } from "../../protocol/errors.js";
import type { Command } from "../command.js";

/** `cpr serve` (placeholder while it is being written). */
export const command: Command = {
  name: "serve",
  usage: "cpr serve",
  summary: "not yet available",
  help: "",
  options: {},
  async run() {
    throw new CprError("not-implemented", "cpr serve is not available yet");
  },
};
