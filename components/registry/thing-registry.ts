// The IoT thing registry of one stack: the thing type, one thing group per fleet group (with its
// attributes), every thing of the fleet and its group membership.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { FleetGroup } from "../../core/stack-config";
import { inChunks } from "../private/chunks";

export interface ThingRegistryArgs {
  /** The thing type every sensor has (the seed's `sensor`, "A sensor"). */
  readonly thingType: { readonly name: string; readonly description: string };
  /** The fleet: groups with their description, attributes and thing names. */
  readonly fleet: readonly FleetGroup[];
}

export class ThingRegistry extends pulumi.ComponentResource {
  /** The thing type. */
  readonly thingType: aws.iot.ThingType;
  /** Thing groups by group name. */
  readonly groups: Readonly<Record<string, aws.iot.ThingGroup>>;
  /** Things by thing name, in fleet order; complete once {@link ready} settles. */
  readonly things: Readonly<Record<string, aws.iot.Thing>>;
  /** Settles once every thing of the fleet is made (a large fleet is made a chunk at a time). */
  readonly ready: Promise<void>;
  /** Every thing's name, in fleet order. */
  readonly thingNames: pulumi.Output<string[]>;

  constructor(name: string, args: ThingRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:registry:ThingRegistry", name, {}, opts);
    const parent = { parent: this };

    this.thingType = new aws.iot.ThingType(
      `${name}-type`,
      { name: args.thingType.name, properties: { description: args.thingType.description } },
      parent,
    );

    const groups: Record<string, aws.iot.ThingGroup> = {};
    for (const g of args.fleet) {
      groups[g.group] = new aws.iot.ThingGroup(
        `${name}-group-${g.group}`,
        {
          name: g.group,
          properties: {
            description: g.description,
            attributePayload: { attributes: { ...g.attributes } },
          },
        },
        parent,
      );
    }
    this.groups = groups;
    const things: Record<string, aws.iot.Thing> = {};
    this.things = things;
    // A large fleet is made a chunk at a time (components/private/chunks.ts).
    const members = args.fleet.flatMap((g) => g.things.map((thingName) => ({ g, thingName })));
    this.ready = inChunks(members, ({ g, thingName }) => {
      // Physical names are the fleet's names: devices connect with client id = thing name,
      // which the least-privilege policy's ${iot:Connection.Thing.ThingName} relies on.
      const thing = new aws.iot.Thing(
        `${name}-${thingName}`,
        { name: thingName, thingTypeName: this.thingType.name },
        parent,
      );
      things[thingName] = thing;
      new aws.iot.ThingGroupMembership(
        `${name}-${thingName}-in-${g.group}`,
        { thingName: thing.name, thingGroupName: groups[g.group].name },
        parent,
      );
    });
    this.thingNames = pulumi.output(
      this.ready.then(() => pulumi.all(Object.values(things).map((t) => t.name))),
    );

    this.registerOutputs({
      thingTypeName: this.thingType.name,
      groupNames: Object.keys(groups),
      thingNames: this.thingNames,
    });
  }
}
