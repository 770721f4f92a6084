// The limits of the API's request bodies, read from /openapi.json: the form's maxlength,
// min, max and required come from the schema the server validates against, never from a
// second copy here.
let loaded = null;

export function openapi() {
  if (!loaded) {
    loaded = fetch("/openapi.json", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { components: { schemas: {} } }))
      .catch(() => ({ components: { schemas: {} } }));
  }
  return loaded;
}

// One property's constraints, with `anyOf: [{...}, {type: null}]` unwrapped.
function flat(prop) {
  if (!prop) return {};
  const inner = (prop.anyOf || []).find((p) => p.type && p.type !== "null");
  return { ...prop, ...(inner || {}) };
}

// {field: {maxLength, minLength, minimum, maximum, enum, required}} of a request model.
export async function limits(model) {
  const doc = await openapi();
  const schema = (doc.components && doc.components.schemas && doc.components.schemas[model]) || {};
  const required = new Set(schema.required || []);
  const out = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const p = flat(prop);
    out[name] = {
      maxLength: p.maxLength,
      minLength: p.minLength,
      minimum: p.minimum ?? (p.exclusiveMinimum !== undefined ? p.exclusiveMinimum : undefined),
      exclusiveMinimum: p.exclusiveMinimum,
      maximum: p.maximum,
      enum: p.enum,
      required: required.has(name),
    };
  }
  return out;
}
