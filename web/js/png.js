// Read the text chunks of a PNG file (tEXt, zTXt, iTXt). SaveImage stores the workflow in the
// `nodegraph:workflow` chunk and the run's param values in `nodegraph:params`.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

// Inflate zlib data; a damaged chunk gives null, so the other chunks are still read.
async function inflate(bytes) {
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

// Return {keyword: text} for every text chunk, or null when the data is not a PNG.
export async function readPngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!SIGNATURE.every((value, i) => bytes[i] === value)) return null;
  const view = new DataView(buffer);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const texts = {};
  let offset = 8;
  while (offset + 12 <= bytes.length) {
    const length = view.getUint32(offset);
    const kind = latin1.decode(bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    offset += 12 + length;
    if (kind === 'IEND') break;
    const zero = data.indexOf(0);
    if (zero < 0) continue;
    const keyword = latin1.decode(data.subarray(0, zero));
    if (kind === 'tEXt') {
      texts[keyword] = latin1.decode(data.subarray(zero + 1));
    } else if (kind === 'zTXt') {
      const inflated = await inflate(data.subarray(zero + 2));
      if (inflated) texts[keyword] = latin1.decode(inflated);
    } else if (kind === 'iTXt') {
      // keyword \0 compressed-flag method language \0 translated-keyword \0 text
      const compressed = data[zero + 1] === 1;
      const languageEnd = data.indexOf(0, zero + 3);
      const translatedEnd = data.indexOf(0, languageEnd + 1);
      const body = compressed ? await inflate(data.subarray(translatedEnd + 1)) : data.subarray(translatedEnd + 1);
      if (body) texts[keyword] = utf8.decode(body);
    }
  }
  return texts;
}

const WORKFLOW_KEYS = ['nodegraph:workflow', 'workflow'];
const PARAMS_KEY = 'nodegraph:params';

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// Find the workflow document among a PNG's text chunks: {workflow, params}, or null when there is none.
// The named chunks come first; any other chunk that holds a workflow document is accepted too.
export async function workflowFromPng(buffer) {
  const texts = await readPngText(buffer);
  if (!texts) return null;
  const ordered = [...WORKFLOW_KEYS, ...Object.keys(texts).filter((key) => !WORKFLOW_KEYS.includes(key))];
  for (const key of ordered) {
    if (!(key in texts)) continue;
    const workflow = parseJson(texts[key]);
    if (workflow && workflow.format === 'nodegraph/workflow') {
      const params = PARAMS_KEY in texts ? parseJson(texts[PARAMS_KEY]) : null;
      return { workflow, params: params && typeof params === 'object' ? params : null };
    }
  }
  return null;
}
