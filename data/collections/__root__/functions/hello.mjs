// The bundled example function: `POST /functions/hello/invoke` with
// `{"input": {"name": "Ada"}}` answers `{"ok": true, "data": {"message": "Hello, Ada!"}}`.
export async function handler(input, context) {
  const name = typeof input.name === "string" && input.name.trim() ? input.name.trim() : "world";
  console.log("greeting", name, "in run", context.runId);
  return { ok: true, data: { message: `Hello, ${name}!`, version: context.deploymentVersion } };
}
