"""Link <-> Zoom service code shared by every Lambda function (packaged as the SharedLayer)."""
