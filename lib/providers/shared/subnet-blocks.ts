/**
 * `count` equal blocks carved from the VPC's block in order: 4 more prefix bits (16 subnets) for up to
 * 16 zones, e.g. 10.42.0.0/16 → 10.42.0.0/20, 10.42.16.0/20, ...
 */
export function subnetBlocks(cidr: string, count: number): string[] {
  const [address, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  const base = (address ?? "").split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  const subnetBits = bits + 4;
  const size = 2 ** (32 - subnetBits);
  return Array.from({ length: count }, (_, i) => {
    const start = base + i * size;
    const octets = [24, 16, 8, 0].map((shift) => Math.floor(start / 2 ** shift) % 256);
    return `${octets.join(".")}/${subnetBits}`;
  });
}
