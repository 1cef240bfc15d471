import { CprError } from "../../protocol/errors.js";
import type { Command } from "../command.js";

/** `cpr get` (placeholder while it is being written). */
export const command: Command = {
  name: "get",
  usage: "cpr get",
  summary: "not yet available",
  help: "",
  options: {},
  async run() {
    throw new CprError("not-implemented", "cpr get is not available yet");
  },
};
