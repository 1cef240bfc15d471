/**
 * Nix signing keys (`name:base64`) and detached ed25519 signatures, as `nix-store --generate-binary-cache-key`,
 * `nix store sign` and narinfo `Sig:` lines use them. (STUB: signatures fixed; bodies are being written.)
 */
import { CprError } from "./errors.js";

export interface SecretKey {
  readonly name: string;
  /** 32-byte ed25519 seed. */
  readonly seed: Uint8Array;
  /** 32-byte public key. */
  readonly publicKey: Uint8Array;
}

export interface PublicKey {
  readonly name: string;
  readonly key: Uint8Array;
}

export function generateSecretKey(name: string): SecretKey {
  throw new CprError("key.stub", `not implemented ${name}`);
}
/** `name:base64(seed ‖ public key)`, 64 bytes, as Nix writes secret keys. */
export function formatSecretKey(key: SecretKey): string {
  void key;
  throw new CprError("key.stub", "not implemented");
}
export function parseSecretKey(text: string, where?: string): SecretKey {
  throw new CprError("key.stub", `not implemented ${text} ${where ?? ""}`);
}
export function publicKeyOf(key: SecretKey): PublicKey {
  void key;
  throw new CprError("key.stub", "not implemented");
}
/** `name:base64(32-byte key)` */
export function formatPublicKey(key: PublicKey): string {
  void key;
  throw new CprError("key.stub", "not implemented");
}
export function parsePublicKey(text: string, where?: string): PublicKey {
  throw new CprError("key.stub", `not implemented ${text} ${where ?? ""}`);
}
/** `name:base64(signature)` over the UTF-8 message. */
export function signDetached(key: SecretKey, message: string): string {
  void key;
  void message;
  throw new CprError("key.stub", "not implemented");
}
/** True when `sig` (`name:base64`) is a valid signature of `message` by the key of that name among `keys`. */
export function verifyDetached(keys: readonly PublicKey[], message: string, sig: string): boolean {
  void keys;
  void message;
  void sig;
  throw new CprError("key.stub", "not implemented");
}
