/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: it throws on what
 * a scraper would reject or misread (a family's HELP or TYPE twice, TYPE after its samples, a
 * family split in two, a duplicate series, a bad label escape, a value that is not a number).
 */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  help?: string;
  type?: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `{a="x",b="y\"z"}` from position i (at "{"): the labels and the position after "}". */
function readLabels(line: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  while (line[i] !== "}") {
    const eq = line.indexOf("=", i);
    const name = line.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let v = "";
    let j = eq + 2;
    for (; line[j] !== '"'; j++) {
      if (j >= line.length) throw new Error(`unterminated label value in: ${line}`);
      if (line[j] !== "\\") {
        v += line[j];
        continue;
      }
      const e = line[++j];
      if (e === "\\") v += "\\";
      else if (e === '"') v += '"';
      else if (e === "n") v += "\n";
      else throw new Error(`bad escape \\${e} in: ${line}`);
    }
    labels[name] = v;
    i = j + 1;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new Error(`expected , or } at ${i} in: ${line}`);
  }
  return [labels, i + 1];
}

function readValue(text: string, line: string): number {
  const v = text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : text === "NaN" ? NaN : Number(text);
  if (text === "" || (Number.isNaN(v) && text !== "NaN")) throw new Error(`bad value "${text}" in: ${line}`);
  return v;
}

export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: string | null = null;
  const family = (name: string) => {
    if (!NAME.test(name)) throw new Error(`bad metric name "${name}"`);
    const f = families.get(name) ?? { name, samples: [] };
    families.set(name, f);
    return f;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === "HELP") {
        if (f.help !== undefined) throw new Error(`HELP of ${f.name} twice`);
        f.help = meta[3]!;
      } else {
        if (f.type !== undefined) throw new Error(`TYPE of ${f.name} twice`);
        if (f.samples.length) throw new Error(`TYPE of ${f.name} after its samples`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(meta[3]!))
          throw new Error(`bad TYPE ${meta[3]}`);
        f.type = meta[3]!;
      }
      continue;
    }
    if (line.startsWith("#") || line === "") continue;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    const nameEnd = brace >= 0 && brace < space ? brace : space;
    const name = line.slice(0, nameEnd);
    const [labels, after] = brace === nameEnd ? readLabels(line, brace) : [{}, nameEnd];
    if (line[after] !== " ") throw new Error(`expected a space before the value in: ${line}`);
    const value = readValue(line.slice(after + 1), line);
    const f = family(name);
    if (current !== name && f.samples.length) throw new Error(`family ${name} is split`);
    current = name;
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(id)) throw new Error(`series twice: ${line}`);
    series.add(id);
    f.samples.push({ labels, value });
  }
  return families;
}
