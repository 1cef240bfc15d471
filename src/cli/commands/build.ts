import { CprError } from "../../protocol/errors.js";
import type { Command } from "../command.js";

/** `cpr build` (placeholder while it is being written). */
export const command: Command = {
  name: "build",
  usage: "cpr build",
  summary: "not yet available",
  help: "",
  options: {},
  async run() {
    throw new CprError("not-implemented", "cpr build is not available yet");
  },
};
