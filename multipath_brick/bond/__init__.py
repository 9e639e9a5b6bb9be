"""The iSCSI bond: host networks mapped to iscsiadm ifaces. Not built yet."""
