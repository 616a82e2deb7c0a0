# The wheels of crates/driver/requirements.lock as a list of { name, version, sha256, url },
# in lock order: the same files, at the same versions and hashes, that `cargo xtask dist`
# unpacks into the full image. Builtins only, so xtask's tests evaluate it without nixpkgs
# and compare it with their own reading of the lock.
lockFile:
let
  lines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile lockFile));
  matching = regex: builtins.filter (m: m != null) (map (builtins.match regex) lines);
  # `name==version \`, then `    --hash=sha256:<hex>`, then `    # <wheel URL>`.
  pins = matching "([A-Za-z0-9._-]+)==([^ ]+) \\\\";
  hashes = matching " +--hash=sha256:([0-9a-f]{64})";
  urls = matching " +# (https://[^ ]+\\.whl)";
  count = builtins.length pins;
in
assert count > 0;
assert builtins.length hashes == count;
assert builtins.length urls == count;
builtins.genList (
  i:
  let
    pin = builtins.elemAt pins i;
  in
  {
    name = builtins.elemAt pin 0;
    version = builtins.elemAt pin 1;
    sha256 = builtins.head (builtins.elemAt hashes i);
    url = builtins.head (builtins.elemAt urls i);
  }
) count
